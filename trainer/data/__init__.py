"""The data the trainer reads: labelled training images (`images`), validation images with boxes (`boxes`) and what
identifies a data set in a model's card (`provenance`). May import engine and the trainer's base only."""
