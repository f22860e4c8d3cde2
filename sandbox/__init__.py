"""The test sandbox: fakes and helpers for tests and the demo, apart from the product."""
