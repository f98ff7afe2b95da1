//! Client authentication at the token endpoint: public, confidential-symmetric (HTTP Basic),
//! confidential-asymmetric (`private_key_jwt`). (In progress.)
