"""People: accounts and sessions (``accounts.py``, with ``password_hashing.py``, ``login_throttle.py``,
``password_reset.py``, ``account_deletion.py``, ``passwords.py``, ``nicknames.py`` and ``mail.py``), Naver
login (``naver.py``), reviews (``reviews.py``), notifications (``notifications.py``), my page (``mypage.py``),
and blocking and reporting people (``blocks.py``, ``reports.py``)."""
