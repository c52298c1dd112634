"""Container lifecycle monitoring and database service discovery on a Docker engine."""
