"""mvnb: a runnable research report on contrastive learning of music video representations."""

__version__ = "0.1.0"
