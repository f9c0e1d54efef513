"""Writing what the app shows: the explained video (`video`: the Exporter, through engine.tools.render) and snapshots
of the views (`snapshot`, PNG). Imports app.state and engine only."""
