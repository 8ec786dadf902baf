"""Nearest neighbours of given words by cosine similarity, all queries in one matrix product."""

import numpy as np

from evaluation.vectors import SearchedVocabulary, WordVectors


def nearest_neighbours(vectors: WordVectors, words: list[str], count: int = 8, restrict_vocab: int | None = None,
                       exact_lookup: bool = False) -> dict[str, list[tuple[str, float]] | None]:
    """For each word, its `count` nearest words among the first `restrict_vocab` (None: all) with their
    cosines, the word itself left out; None for a word not in the vocabulary. A word is looked up as given,
    else (unless `exact_lookup`) standardised as training standardises text, so `King` finds king (the most
    frequent spelling of a standardised form stands for all)."""
    wanted = set(words)
    exact = {word: index for index, word in enumerate(vectors.words[:restrict_vocab]) if word in wanted}
    fallback = np.full(len(words), -1)
    if not exact_lookup and words:
        searched = SearchedVocabulary.of(vectors, restrict_vocab)
        fallback = searched.ids(searched.keys_of(np.array(words, dtype=str)))
    query_ids = np.array([exact.get(word, int(other)) for word, other in zip(words, fallback)], dtype=np.int64)
    found = query_ids >= 0
    unit = vectors.unit_rows(restrict_vocab)
    count = max(0, min(count, unit.shape[0] - 1))
    scores = unit[query_ids[found]] @ unit.T
    scores[np.arange(int(found.sum())), query_ids[found]] = -np.inf
    best = np.argsort(-scores, axis=1, kind="stable")[:, :count]
    best_scores = np.take_along_axis(scores, best, axis=1)
    neighbours: dict[str, list[tuple[str, float]] | None] = {word: None for word in words}
    found_words = [word for word, is_found in zip(words, found) if is_found]
    for word, ids, similarities in zip(found_words, best, best_scores):
        neighbours[word] = [(vectors.words[index], float(similarity)) for index, similarity in zip(ids, similarities)]
    return neighbours
