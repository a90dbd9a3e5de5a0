"""Recommendations with cold start by user segment (see ``blueprint``)."""
