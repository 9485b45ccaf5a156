from tests.store.conftest import db_path, running  # noqa: F401  (the store's fixtures, for the repository)
