"""joulegate.bench"""
