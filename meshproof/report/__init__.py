"""Reports rendered from results.json: the terminal summary and JUnit XML."""
