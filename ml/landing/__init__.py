"""Landing: the export contract, landing health, and the vendored Hillstrom data."""
