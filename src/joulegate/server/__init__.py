"""joulegate.server"""
