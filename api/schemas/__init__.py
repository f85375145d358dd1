"""Request / response schemas of the API (``XCreate`` / ``XPublic``, ``QueryRequest`` / ``QueryResponse``)."""
