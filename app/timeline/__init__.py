"""Evidence over time for a video file: the rows per frame (`rows`, plain Python), the background pass that fills them
over the whole file (`whole_file_pass`) and the keeper that ties both to the live view and the settings (`keeper`).
Imports app.explaining, app.state and engine; the timeline widget (app.widgets.timeline) draws `rows`."""
