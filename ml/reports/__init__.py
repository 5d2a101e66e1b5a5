"""Reports rendered for people: HTML from Jinja2 templates in templates/."""
