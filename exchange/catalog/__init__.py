"""The catalog context: materials, assay parameters, fit-for-use grading and compliance gates."""
