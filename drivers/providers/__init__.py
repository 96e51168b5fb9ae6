"""Document providers: where services get a resident's records (demo data, or an HTTP platform)."""
