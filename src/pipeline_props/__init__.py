"""pipeline-props."""
