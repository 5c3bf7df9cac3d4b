"""What a result looks like, gradio-free: tables, figures and the words around them, tested on plain data."""
