"""HTTP layer: requests, responses, forms, cookies."""
