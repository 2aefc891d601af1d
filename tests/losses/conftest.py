from tests.standin import make_standin, rotation, standin  # noqa: F401  (fixtures)
