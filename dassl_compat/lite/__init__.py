"""The bundled Dassl-compatible engine (used when Dassl is absent or DASSL_BACKEND=lite); see `dassl_compat`."""
