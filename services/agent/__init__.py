"""The operator agent: claims tickets, diagnoses, remediates through typed tools, verifies.

It knows tickets and the subject's toolbox, nothing else (no scenario, no chaos, no faults).
"""
