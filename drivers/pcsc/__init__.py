"""Contact smart cards through PC/SC (pyscard): the social security card, generic ISO 7816-4."""
