//! Backend Services: `client_credentials` with a signed assertion, and the token cache. (In progress.)
