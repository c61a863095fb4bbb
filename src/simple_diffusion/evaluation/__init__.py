"""What a trained model is judged by: distances, floors, memorisation, plots and the report page."""
