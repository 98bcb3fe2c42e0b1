"""ipywidgets for live notebooks: each builds its controls and an output area and redraws from
package functions, so tests can drive the controls from Python and read what is displayed."""
