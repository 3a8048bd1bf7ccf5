"""The operator agent: claims tickets, diagnoses, remediates through typed tools, verifies.

It knows tickets and a subject adapter, nothing else (no scenario, no chaos).
"""
