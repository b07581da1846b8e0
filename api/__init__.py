"""HTTP only: app factory, routers, schemas, problem details."""
