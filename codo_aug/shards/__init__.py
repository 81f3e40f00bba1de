"""WebDataset shards: `PREFIX-%06d.tar` of `KEY.view0.jpg ... KEY.json` members."""
