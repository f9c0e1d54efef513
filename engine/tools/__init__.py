"""The engine's command lines and offline jobs: `python -m engine` (its parser, `cli_parser`, and the checks of single
arguments, `arguments`, both torch-free), `build`, `bench`, `render` and `agreement` (the CPU runtime against the torch
pipeline). Top of engine's layers: may import everything below (api, explainer, video, backends, export, ...);
nothing in engine imports it, except `engine/__main__.py`. The app imports `arguments` (torch-free) only."""
