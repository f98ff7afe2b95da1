//! Private key loading (PEM, JWK) and public JWKS export. (In progress.)
