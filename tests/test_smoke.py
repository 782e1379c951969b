def test_it_migrates_and_sees_the_citizen(citizen_a):
    assert citizen_a.person.account.balance == 1500.50
