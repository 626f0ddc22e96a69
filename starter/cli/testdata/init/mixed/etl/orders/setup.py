from setuptools import find_packages, setup

setup(name="orders-etl", version="2.1.0", packages=find_packages(exclude=["tests"]))
