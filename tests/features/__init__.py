"""Tests of `mvnb.features`, one file per module of the package."""
