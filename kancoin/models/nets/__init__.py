"""The networks of the model families (torch); their specs are kancoin.models.NAME."""
