"""SevenTweets: one node of a network of small Twitter-like services."""

__version__ = "0.1.0"
