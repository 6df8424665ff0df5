from meshproof.xfcc import elements, peer_uri


def test_the_last_element_names_the_immediate_peer() -> None:
    header = ('By=spiffe://cluster.local/ns/default/sa/a;URI=spiffe://cluster.local/ns/default/sa/b,'
              'By=spiffe://cluster.local/ns/default/sa/c;Hash=ab;Subject="CN=x,O=y";URI=spiffe://cluster.local/ns/x/sa/d')
    assert peer_uri(header) == "spiffe://cluster.local/ns/x/sa/d"
    assert elements(header)[1]["Subject"] == "CN=x,O=y"


def test_no_header_means_no_peer() -> None:
    assert peer_uri("") is None
