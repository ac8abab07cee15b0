"""joulegate.cache"""
