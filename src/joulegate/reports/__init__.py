"""joulegate.reports"""
