"""Export the online encoder's backbone, FPN and box head to detector formats, one file per format."""
