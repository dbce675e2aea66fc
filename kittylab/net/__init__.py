"""The network: the mTLS picture-server, the OCSP responder, the client, and web-server configurations."""
