"""The centre's trust: the fleet CA and its certificates (:mod:`fleet.trust.pki`), the
signed catalog repository (python-tuf, :mod:`fleet.trust.catalog_repo`) and the review of a
catalog before it is signed (:mod:`fleet.trust.catalog_review`)."""
