"""Create output files whose names are hostile to logs, JSON and terminals."""

names = [
    b"not-utf8-\xff\xfe.txt",
    b"new\nline.txt",
    b"esc-\x1b[31mred.txt",
    b"..",
    b"...",
    b"-rf",
    b"x" * 255,
]
made = []
for name in names:
    try:
        with open(b"/outputs/" + name, "wb") as f:
            f.write(b"data")
        made.append(repr(name))
    except OSError as exc:
        made.append(f"{name!r}: {exc.strerror}")
print("\n".join(made))
