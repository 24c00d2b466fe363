"""Readers for MovieLens 100K and 1M in their official GroupLens formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._io import DataFormatError, InteractionData, check_item_text, iter_lines, require_file

# The 19 genre flags of ml-100k `u.item`, in file order (GroupLens README / u.genre).
ML_100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


def movie_text(title: str, genres: list[str]) -> str:
    """Item text of a movie: `"{title}; {', '.join(genres)}"` (genres left out when there are none)."""
    genre_text = ", ".join(genres)
    return f"{title}; {genre_text}" if genre_text else title


def _read_ratings(path: Path, separator: str, layout: str) -> tuple[dict[int, list[int]], dict[int, tuple]]:
    """Parse `user<sep>item<sep>rating<sep>timestamp` lines into time-ordered sequences.

    Each user's ratings are sorted by timestamp; ratings with the same timestamp keep their file order
    (stable sort). Every rating counts as one interaction (implicit feedback). Users come out in id order.
    """
    events: dict[int, list[tuple[int, int]]] = {}
    first_seen: dict[int, tuple[Path, int]] = {}
    for line_number, line in iter_lines(path, encoding="latin-1"):
        fields = line.split(separator)
        try:
            if len(fields) != 4:
                raise ValueError
            user_id, item_id, _, timestamp = int(fields[0]), int(fields[1]), float(fields[2]), int(fields[3])
        except ValueError:
            raise DataFormatError(path, line_number, f"expected {layout!r}, got {line[:80]!r}") from None
        events.setdefault(user_id, []).append((timestamp, item_id))
        if item_id not in first_seen:
            first_seen[item_id] = (path, line_number)
    sequences = {}
    for user_id in sorted(events):
        user_events = events[user_id]
        user_events.sort(key=lambda event: event[0])
        sequences[user_id] = [item_id for _, item_id in user_events]
    return sequences, first_seen


def _catalogue(sequences: dict[int, list[int]], movies: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Records of the interacted movies, in id order (unrated movies are not part of the catalogue)."""
    interacted = {item_id for sequence in sequences.values() for item_id in sequence}
    return [movies[item_id] for item_id in sorted(interacted) if item_id in movies]


def read_ml_100k(folder: str | Path, *, missing_text: str = "raise") -> InteractionData:
    """Read MovieLens 100K (`u.data`: tab-separated `user item rating timestamp`; `u.item`: `|`-separated, Latin-1).

    Item text is the title plus the genres. Ids are the MovieLens integers. The catalogue holds the rated
    movies (all 1,682 for ml-100k).

    Args:
        folder (`str` or `Path`): the `ml-100k` folder.
        missing_text (`str`, defaults to `"raise"`): see `check_item_text`.
    """
    folder = Path(folder)
    ratings_path = require_file(folder / "u.data", "MovieLens 100K ratings file")
    items_path = require_file(folder / "u.item", "MovieLens 100K item file")
    sequences, first_seen = _read_ratings(ratings_path, "\t", "user\\titem\\trating\\ttimestamp")
    movies: dict[int, dict[str, Any]] = {}
    for line_number, line in iter_lines(items_path, encoding="latin-1"):
        fields = line.split("|")
        flags = fields[5:]
        if len(fields) != 5 + len(ML_100K_GENRES) or any(flag not in ("0", "1") for flag in flags):
            raise DataFormatError(
                items_path,
                line_number,
                f"expected 'id|title|release date|video release date|IMDb URL|19 genre flags', got {line[:80]!r}",
            )
        try:
            item_id = int(fields[0])
        except ValueError:
            raise DataFormatError(
                items_path, line_number, f"movie id {fields[0]!r} is not an integer"
            ) from None
        if item_id in movies:
            raise DataFormatError(items_path, line_number, f"duplicate movie id {item_id}")
        genres = [genre for genre, flag in zip(ML_100K_GENRES, flags) if flag == "1"]
        title = fields[1].strip()
        movies[item_id] = {
            "item_id": item_id,
            "text": movie_text(title, genres) if title else "",
            "title": title,
            "release_date": fields[2],
            "imdb_url": fields[4],
            "genres": genres,
        }
    items = check_item_text(sequences, _catalogue(sequences, movies), first_seen, items_path, missing_text)
    items.sort(key=lambda record: record["item_id"])
    return InteractionData(sequences=sequences, items=items, files=[ratings_path, items_path])


def read_ml_1m(folder: str | Path, *, missing_text: str = "raise") -> InteractionData:
    """Read MovieLens 1M (`ratings.dat`: `UserID::MovieID::Rating::Timestamp`; `movies.dat`:
    `MovieID::Title::Genres` with `|`-separated genres; both Latin-1).

    Item text is the title plus the genres. Ids are the MovieLens integers. The catalogue holds the rated
    movies (3,706 of the 3,883 in `movies.dat` for the official file).

    Args:
        folder (`str` or `Path`): the `ml-1m` folder.
        missing_text (`str`, defaults to `"raise"`): see `check_item_text`.
    """
    folder = Path(folder)
    ratings_path = require_file(folder / "ratings.dat", "MovieLens 1M ratings file")
    items_path = require_file(folder / "movies.dat", "MovieLens 1M movie file")
    sequences, first_seen = _read_ratings(ratings_path, "::", "UserID::MovieID::Rating::Timestamp")
    movies: dict[int, dict[str, Any]] = {}
    for line_number, line in iter_lines(items_path, encoding="latin-1"):
        fields = line.split("::")
        try:
            if len(fields) != 3:
                raise ValueError
            item_id = int(fields[0])
        except ValueError:
            raise DataFormatError(
                items_path, line_number, f"expected 'MovieID::Title::Genres', got {line[:80]!r}"
            ) from None
        if item_id in movies:
            raise DataFormatError(items_path, line_number, f"duplicate movie id {item_id}")
        title = fields[1].strip()
        genres = [genre for genre in fields[2].split("|") if genre]
        movies[item_id] = {
            "item_id": item_id,
            "text": movie_text(title, genres) if title else "",
            "title": title,
            "genres": genres,
        }
    items = check_item_text(sequences, _catalogue(sequences, movies), first_seen, items_path, missing_text)
    items.sort(key=lambda record: record["item_id"])
    return InteractionData(sequences=sequences, items=items, files=[ratings_path, items_path])
