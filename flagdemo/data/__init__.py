"""The bundled files (demo sentences, the labelled retrieval set, training pairs, images) and their readers
(``datasets``)."""
