"""The HTTP face of Cubeport: a FastAPI app factory and one router module per API family."""
