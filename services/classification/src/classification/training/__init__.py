"""Training data and fitting of the kind and sentiment heads (run ``python -m classification.training.fit``).

How the data is made (all of it is in this folder or read from the handed datasets at fit time):

* ``kind_written.tsv`` : 170 short texts written for this project by its engineers, 25 to 30 per kind, spread over
  tickets, chats, reviews, forum posts, issues, emails and surveys (column ``channel``). No text is copied.
* Assembled at fit time from ``../shared/datasets/`` with stated heuristics (weak labels, to widen the domain):
  banking77 queries ending in "?" → ``question``; URR app reviews humans tagged ERROR with ≤ 3 stars → ``bug``;
  5-star URR reviews with no ERROR/problem topic → ``praise``. At most 60 of each, fixed seed.
* Sentiment: URR app reviews labelled from stars (1-2 negative, 3 neutral, 4-5 positive), plus the written texts
  of kind ``question`` / ``other`` and 150 banking77 queries as ``neutral`` (factual text is the class that
  stars cover worst).
"""
