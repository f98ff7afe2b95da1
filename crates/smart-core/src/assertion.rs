//! RFC 7523 `client_assertion` JWTs signed with ES384 or RS384. (In progress.)
