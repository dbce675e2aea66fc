"""The PKI core: keys, names, CSRs, profiles, the CA, CRLs, PKCS#12 and verification, on cryptography objects and files."""
