"""Images: checking and normalising attachments, and the memory their bytes may take."""
