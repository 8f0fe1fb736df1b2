"""Marketing automation's machinery (issue 14, decision 0046): the outbox sender and tracking links
(:mod:`.sender`, :mod:`.tracking`) and the sequence engine (:mod:`.engine`)."""
