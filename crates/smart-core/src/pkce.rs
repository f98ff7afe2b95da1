//! PKCE (RFC 7636), S256 only. (In progress.)
